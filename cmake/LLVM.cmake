# LLVM 16 for the llvm target (compiler/backend/llvm/, docs/targets.md): its
# C API (LLVM-C), the ORC JIT and the AArch64, RISC-V and X86 code
# generators, all in the one shared library libLLVM-16 of Debian's
# llvm-16-dev. SNNC_LLVM=AUTO uses it when llvm-config-16 or LLVM 16's CMake
# package is found, ON requires it, OFF builds snnc without it (the target
# then says so when asked for). Sets SNNC_HAVE_LLVM and, with it, the
# imported library snnc_llvm_libs.
set(SNNC_HAVE_LLVM OFF)
if(NOT SNNC_LLVM STREQUAL "OFF")
  set(llvm_inc "")
  set(llvm_lib "")
  find_program(SNNC_LLVM_CONFIG NAMES llvm-config-16
               DOC "llvm-config of LLVM 16 (Debian: llvm-16-dev)")
  if(SNNC_LLVM_CONFIG)
    execute_process(COMMAND ${SNNC_LLVM_CONFIG} --includedir OUTPUT_VARIABLE llvm_inc
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${SNNC_LLVM_CONFIG} --libdir OUTPUT_VARIABLE llvm_libdir
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
  else()
    find_package(LLVM 16 CONFIG QUIET)
    if(LLVM_FOUND)
      set(llvm_inc ${LLVM_INCLUDE_DIRS})
      set(llvm_libdir ${LLVM_LIBRARY_DIRS})
    endif()
  endif()
  if(llvm_libdir)
    find_library(SNNC_LLVM_LIB NAMES LLVM-16 LLVM PATHS ${llvm_libdir} NO_DEFAULT_PATH)
  endif()
  if(SNNC_LLVM_LIB AND EXISTS "${llvm_inc}/llvm-c/LLJIT.h")
    set(SNNC_HAVE_LLVM ON)
    add_library(snnc_llvm_libs INTERFACE)
    target_include_directories(snnc_llvm_libs SYSTEM INTERFACE ${llvm_inc})
    target_link_libraries(snnc_llvm_libs INTERFACE ${SNNC_LLVM_LIB})
    message(STATUS "llvm target: LLVM 16 (${SNNC_LLVM_LIB})")
  elseif(SNNC_LLVM STREQUAL "ON")
    message(FATAL_ERROR "SNNC_LLVM=ON, but LLVM 16 was not found (neither llvm-config-16 nor LLVM 16's "
            "CMake package with the shared libLLVM): install llvm-16-dev (scripts/install-deps.sh), "
            "or configure with -DSNNC_LLVM=OFF")
  else()
    message(STATUS "llvm target: off (LLVM 16 not found; Debian: apt-get install llvm-16-dev)")
  endif()
endif()
