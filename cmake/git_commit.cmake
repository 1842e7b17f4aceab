# Run at every build (cmake -P): writes OUT (generated/kiln/git_commit.h) with the source's
# commit, `git describe --always --dirty --abbrev=12`, so a binary reports the code it was built
# from rather than the commit of its last configure. OVERRIDE, when set, wins: the GPU machine
# builds a copy of the working tree without .git (docs/gpu.md passes the commit in). The file is
# rewritten only when its text changes, so nothing recompiles otherwise.
set(commit "${OVERRIDE}")
if(NOT commit)
  execute_process(COMMAND git describe --always --dirty --abbrev=12 WORKING_DIRECTORY "${SRC}"
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT commit)
    set(commit "unknown")
  endif()
endif()
set(text "// Generated at build time by cmake/git_commit.cmake.\n#pragma once\n#define KILN_GIT_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
