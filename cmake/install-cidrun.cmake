# Installs build/cidrun without its debug information, which is most of its size (see
# docs/ARCHITECTURE.md, "Installing"). Included by the install(CODE) of src/CMakeLists.txt, which
# sets cidrun_binary (the built file), cidrun_objcopy, cidrun_readelf and cidrun_part:
#   binary  PREFIX/bin/cidrun: no debug sections and no symbol table, with a .gnu_debuglink to
#           cidrun.debug (the component "cidrun", what `cmake --install` does by default)
#   debug   PREFIX/lib/debug/.build-id/XX/YYYY.debug: the DWARF and the symbol table, where gdb,
#           elfutils and systemd-coredump look them up by the binary's build ID (the component
#           "debug", installed only when asked: `cmake --install BUILD --component debug`)
# Both come from one build/cidrun.debug made next to the binary, so they always match.
set(cidrun_debug "${cidrun_binary}.debug")
if(NOT EXISTS "${cidrun_debug}" OR "${cidrun_binary}" IS_NEWER_THAN "${cidrun_debug}")
  execute_process(COMMAND "${cidrun_objcopy}" --only-keep-debug "${cidrun_binary}"
                          "${cidrun_debug}.tmp"
                  COMMAND_ERROR_IS_FATAL ANY)
  file(RENAME "${cidrun_debug}.tmp" "${cidrun_debug}")
endif()

set(cidrun_root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
if(cidrun_part STREQUAL "binary")
  set(cidrun_dest "${cidrun_root}/bin/cidrun")
  file(MAKE_DIRECTORY "${cidrun_root}/bin")
  # Written beside the destination and renamed over it: a cidrun that is running (a container's
  # monitor, a FUSE server) keeps the file it started from, where writing into it would fail
  # (ETXTBSY) or change it under the process.
  execute_process(COMMAND "${cidrun_objcopy}" --strip-all "--add-gnu-debuglink=${cidrun_debug}"
                          "${cidrun_binary}" "${cidrun_dest}.tmp"
                  COMMAND_ERROR_IS_FATAL ANY)
  file(CHMOD "${cidrun_dest}.tmp" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
       GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  file(RENAME "${cidrun_dest}.tmp" "${cidrun_dest}")
else()
  execute_process(COMMAND "${cidrun_readelf}" -n "${cidrun_binary}" OUTPUT_VARIABLE cidrun_notes
                  COMMAND_ERROR_IS_FATAL ANY)
  if(NOT cidrun_notes MATCHES "Build ID: ([0-9a-f][0-9a-f])([0-9a-f]+)")
    message(FATAL_ERROR "${cidrun_binary} has no build ID (link with -Wl,--build-id)")
  endif()
  set(cidrun_dest "${cidrun_root}/lib/debug/.build-id/${CMAKE_MATCH_1}/${CMAKE_MATCH_2}.debug")
  get_filename_component(cidrun_dir "${cidrun_dest}" DIRECTORY)
  file(MAKE_DIRECTORY "${cidrun_dir}")
  file(COPY_FILE "${cidrun_debug}" "${cidrun_dest}.tmp")
  file(RENAME "${cidrun_dest}.tmp" "${cidrun_dest}")
endif()
message(STATUS "Installing: ${cidrun_dest}")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${cidrun_dest}")
