# What `cmake --install` ships as the SDK: the static libraries a user links,
# their public headers, a CMake package (find_package(Aion CONFIG) giving
# Aion::<name> targets) and a pkg-config file (aion.pc).
#
#   aion_install_library(<target> EXPORT_NAME <name>)
#       once per library, after the libraries it links (dependency order: the
#       pkg-config Libs line is this order reversed)
#   aion_install_package()
#       once, after the last aion_install_library: writes the export set,
#       AionConfig.cmake, AionConfigVersion.cmake and aion.pc
#
# Everything here is installed as component "dev" (the aion-dev package).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AION_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Aion)
set(_aion_install_dir ${CMAKE_CURRENT_LIST_DIR})

# aion_install_library(<target> EXPORT_NAME <name>)
# Installs <target> (a STATIC library) as Aion::<name>, and the headers under
# aion/ of its public include folder: <source dir>/include for a component
# library, the generated gen/ folder for an aion_proto_library (only *.pb.h).
# The same Aion::<name> exists as an alias in this build, so code and tests can
# use the installed names. A plain "<dir>" in the target's public include
# directories is rewritten to $<BUILD_INTERFACE:<dir>> (the installed target
# gets include/ instead, from INCLUDES DESTINATION), so the component's own
# CMakeLists needs no install-specific spelling.
function(aion_install_library target)
  cmake_parse_arguments(A "" "EXPORT_NAME" "" ${ARGN})
  if(NOT A_EXPORT_NAME OR A_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "usage: aion_install_library(<target> EXPORT_NAME <name>)")
  endif()
  get_target_property(type ${target} TYPE)
  if(NOT type STREQUAL "STATIC_LIBRARY")
    # aion.pc and the -dev package assume archives; a shared library would
    # also need an soname, a runtime package and RPATH handling.
    message(FATAL_ERROR "aion_install_library(${target}): ${type}, expected a STATIC library")
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${A_EXPORT_NAME})
  add_library(Aion::${A_EXPORT_NAME} ALIAS ${target})

  get_target_property(proto_root ${target} AION_PROTO_ROOT)
  if(proto_root)
    get_target_property(header_root ${target} AION_PROTO_OUT)
    set(pattern "*.pb.h")
  else()
    get_target_property(source_dir ${target} SOURCE_DIR)
    set(header_root ${source_dir}/include)
    set(pattern "*.h")
  endif()
  if(NOT IS_DIRECTORY ${header_root}/aion)
    message(FATAL_ERROR "aion_install_library(${target}): no public headers in ${header_root}/aion")
  endif()

  foreach(prop INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES)
    get_target_property(dirs ${target} ${prop})
    if(dirs)
      list(TRANSFORM dirs REPLACE "^${header_root}$" "$<BUILD_INTERFACE:${header_root}>")
      set_target_properties(${target} PROPERTIES ${prop} "${dirs}")
    endif()
  endforeach()

  install(TARGETS ${target} EXPORT AionTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${header_root}/aion DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
          FILES_MATCHING PATTERN "${pattern}")
  set_property(GLOBAL APPEND PROPERTY AION_INSTALLED_LIBRARIES ${target})
endfunction()

# aion_install_package()
# The export set (AionTargets.cmake), AionConfig.cmake with the dependencies
# the exported targets name, AionConfigVersion.cmake, and aion.pc.
function(aion_install_package)
  install(EXPORT AionTargets NAMESPACE Aion:: DESTINATION ${AION_INSTALL_CMAKEDIR}
          COMPONENT dev)
  configure_package_config_file(${_aion_install_dir}/AionConfig.cmake.in
    ${CMAKE_BINARY_DIR}/AionConfig.cmake INSTALL_DESTINATION ${AION_INSTALL_CMAKEDIR})
  # Before 1.0 a minor release may change the API, so 0.1 does not satisfy a
  # request for 0.2 nor the other way round.
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/AionConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/AionConfig.cmake ${CMAKE_BINARY_DIR}/AionConfigVersion.cmake
          DESTINATION ${AION_INSTALL_CMAKEDIR} COMPONENT dev)

  get_property(libs GLOBAL PROPERTY AION_INSTALLED_LIBRARIES)
  # `cmake --install --strip` and cpack (CPACK_STRIP_FILES) strip executables
  # but not archives; their debug info would make up most of the -dev package.
  # As Debian's dh_strip does, archives lose only debug info, not symbols.
  set(archives "")
  foreach(lib ${libs})
    string(APPEND archives " \"${CMAKE_INSTALL_LIBDIR}/$<TARGET_FILE_NAME:${lib}>\"")
  endforeach()
  if(CMAKE_STRIP)
    install(CODE "
      if(CMAKE_INSTALL_DO_STRIP)
        foreach(archive ${archives})
          execute_process(COMMAND [[${CMAKE_STRIP}]] --strip-debug
                          \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${archive}\"
                          COMMAND_ERROR_IS_FATAL ANY)
        endforeach()
      endif()" COMPONENT dev)
  endif()

  # aion.pc: -l flags in link order (a library before the ones it uses),
  # which is the registration order reversed.
  list(REVERSE libs)
  set(AION_PC_LIBS "")
  foreach(lib ${libs})
    get_target_property(name ${lib} OUTPUT_NAME)
    if(NOT name)
      set(name ${lib})
    endif()
    string(APPEND AION_PC_LIBS " -l${name}")
  endforeach()
  # ${pcfiledir} keeps the file valid wherever the tree is installed
  # (cmake --install --prefix <dir>, or the packages under /usr).
  set(pcdir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  file(RELATIVE_PATH AION_PC_PREFIX_FROM_PCDIR /prefix/${pcdir} /prefix)  # ../..
  string(REGEX REPLACE "/$" "" AION_PC_PREFIX_FROM_PCDIR "${AION_PC_PREFIX_FROM_PCDIR}")
  configure_file(${_aion_install_dir}/aion.pc.in ${CMAKE_BINARY_DIR}/aion.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/aion.pc DESTINATION ${pcdir} COMPONENT dev)
endfunction()
