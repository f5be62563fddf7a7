# Part of `cmake --install` (component runtime), run at install time because
# the places depend on the prefix given then, not the one configured:
#   the systemd unit     <prefix>/lib/systemd/system/aion-worker.service
#   its environment file <sysconfdir>/default/aion-worker
#   the nats-server mappings fragment <sysconfdir>/aion/nats-mappings.conf
# where <sysconfdir> is /etc when the prefix is /usr (the packages, built with
# CPACK_SET_DESTDIR, and a system install), else <prefix>/etc, so
# cmake --install --prefix <dir> writes only under <dir>.
# The unit names the paths of that install. file(INSTALL) honours DESTDIR and
# records the files in the install manifest, like install() does.
# In: AION_UNIT_TEMPLATE, AION_ENV_FILE, AION_NATS_FRAGMENT, AION_STAGING_DIR, AION_BINDIR,
#     AION_DOCDIR (relative to the prefix), CMAKE_INSTALL_PREFIX.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(sysconfdir /etc)
else()
  set(sysconfdir ${CMAKE_INSTALL_PREFIX}/etc)
endif()
set(AION_ENVIRONMENT_FILE ${sysconfdir}/default/aion-worker)
set(AION_BINDIR ${CMAKE_INSTALL_PREFIX}/${AION_BINDIR})
set(AION_DOCDIR ${CMAKE_INSTALL_PREFIX}/${AION_DOCDIR})
configure_file(${AION_UNIT_TEMPLATE} ${AION_STAGING_DIR}/aion-worker.service @ONLY)
file(INSTALL ${AION_STAGING_DIR}/aion-worker.service
     DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
file(INSTALL ${AION_ENV_FILE} DESTINATION ${sysconfdir}/default RENAME aion-worker)
file(INSTALL ${AION_NATS_FRAGMENT} DESTINATION ${sysconfdir}/aion)
