# cmake -DPROGRAM=<exe> -DOUTPUT=<file> -DARGS=<a|b|c> -P run_to_file.cmake
# Runs <exe> with the |-separated ARGS and writes its standard output to
# <file>; fails (and leaves no <file>) if the program fails.
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${PROGRAM} ${args} OUTPUT_FILE ${OUTPUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUTPUT}.tmp)
  message(FATAL_ERROR "${PROGRAM} ${args}: ${rc}")
endif()
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
