// reminder-worker: this app's worker. Every aion-worker flag works here:
//   reminder-worker --dev                          (starts its own nats-server)
//   reminder-worker --nats nats://host:4222 --data /var/lib/reminder
#include <aion/worker/main.h>

#include "reminder.h"

int main(int argc, char** argv) {
  aion::worker::Registries registries;
  reminder::Register(registries.workflows, registries.activities);
  return aion::worker::Main(argc, argv, registries);
}
