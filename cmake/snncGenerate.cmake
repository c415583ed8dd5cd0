# snnc_generate: compile a spiking network with snnc at build time and add
# the generated C to a target, as protobuf_generate does for .proto files.
#
#   snnc_generate(TARGET <target> MODEL <net.snn|net.onnx>
#                 [WEIGHTS <w.safetensors>] [EMBED] [STATIC]
#                 [NETWORK <name>] [TARGET_ARCH c|avx2|avx512] [MATH exact|fast]
#                 [BATCH <n>] [TIMESTEPS <n>] [CHUNK <k>] [RECORD <layer[.var]>...]
#                 [NEURONS <models.snn>] [OPENMP]
#                 [OUT_DIR <dir>] [OUT_VAR <var>] [OPTIONS <snnc options>...])
#
# It adds a custom command that runs `snnc compile` and writes
# OUT_DIR/<net>.c and OUT_DIR/<net>.h (<net>: the network's name in lower
# case), reruns it when the model, the weights, the NEURONS file or snnc
# itself change, adds the .c to the target's sources and OUT_DIR to its
# include directories, and links libm. docs/cmake.md describes every
# argument; the ones that are not obvious:
#
#   WEIGHTS   the weights are compiled into the .c as const arrays
#             (--embed-weights --weights); without it the program loads
#             them at run time with <net>_load_weights.
#   EMBED     embeds an ONNX model's own weights (for a .snn model WEIGHTS
#             implies it and EMBED alone is an error).
#   NETWORK   the network to build (--network); also gives the file names.
#             Without it the name is read from the model when this function
#             runs: from the one `network NAME {` of a .snn file, else from
#             the first line of `snnc info`. The model is then a configure
#             dependency too, so renaming its network reconfigures.
#   OPENMP    links the target with OpenMP::OpenMP_C, so that it is built
#             with OpenMP (every core; the same results as one thread),
#             when the compiler has it.
#
# The function needs the imported executable snnc::snnc (snncConfig.cmake
# defines it; a project that builds snnc itself gets it as an alias).

function(snnc_generate)
  set(flags EMBED STATIC OPENMP)
  set(one TARGET MODEL WEIGHTS NETWORK TARGET_ARCH MATH BATCH TIMESTEPS CHUNK NEURONS OUT_DIR OUT_VAR)
  set(multi RECORD OPTIONS)
  cmake_parse_arguments(arg "${flags}" "${one}" "${multi}" ${ARGN})
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "snnc_generate: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TARGET OR NOT arg_MODEL)
    message(FATAL_ERROR "snnc_generate: needs TARGET <target> and MODEL <file>")
  endif()
  if(NOT TARGET ${arg_TARGET})
    message(FATAL_ERROR "snnc_generate: '${arg_TARGET}' is not a target (call add_executable or add_library first)")
  endif()
  if(NOT TARGET snnc::snnc)
    message(FATAL_ERROR "snnc_generate: no target snnc::snnc (find_package(snnc) defines it)")
  endif()

  get_filename_component(model ${arg_MODEL} ABSOLUTE)
  if(NOT EXISTS ${model})
    message(FATAL_ERROR "snnc_generate: MODEL ${model} does not exist")
  endif()
  set(onnx OFF)
  if(model MATCHES "\\.onnx$")
    set(onnx ON)
  endif()

  set(args compile ${model})
  set(deps ${model} snnc::snnc)

  # the weights: WEIGHTS embeds them; EMBED alone, an ONNX model's own
  set(embed OFF)
  if(arg_WEIGHTS)
    get_filename_component(weights ${arg_WEIGHTS} ABSOLUTE)
    list(APPEND args --embed-weights --weights ${weights})
    list(APPEND deps ${weights})
    set(embed ON)
  elseif(arg_EMBED)
    if(NOT onnx)
      message(FATAL_ERROR "snnc_generate: EMBED needs WEIGHTS <file> for a .snn model (${arg_MODEL})")
    endif()
    list(APPEND args --embed-weights)
    set(embed ON)
  endif()

  if(arg_NEURONS)
    get_filename_component(neurons ${arg_NEURONS} ABSOLUTE)
    list(APPEND args --neurons ${neurons})
    list(APPEND deps ${neurons})
  endif()
  if(arg_NETWORK)
    list(APPEND args --network ${arg_NETWORK})
  endif()

  set(arch c)
  if(arg_TARGET_ARCH)
    set(arch ${arg_TARGET_ARCH})
  endif()
  if(arch STREQUAL "avx2")
    set(arch_flags -mavx2 -mfma)
  elseif(arch STREQUAL "avx512")
    set(arch_flags -mavx512f -mprefer-vector-width=512)
  elseif(arch STREQUAL "c")
    set(arch_flags)
  else()
    message(FATAL_ERROR "snnc_generate: TARGET_ARCH is c, avx2 or avx512, not '${arch}'")
  endif()
  list(APPEND args --target ${arch})
  if(arg_MATH)
    if(NOT arg_MATH MATCHES "^(exact|fast)$")
      message(FATAL_ERROR "snnc_generate: MATH is exact or fast, not '${arg_MATH}'")
    endif()
    list(APPEND args --math ${arg_MATH})
  endif()
  foreach(opt BATCH TIMESTEPS CHUNK)
    if(DEFINED arg_${opt})
      if(NOT arg_${opt} MATCHES "^[1-9][0-9]*$")
        message(FATAL_ERROR "snnc_generate: ${opt} needs a positive integer, not '${arg_${opt}}'")
      endif()
      string(TOLOWER ${opt} name)
      list(APPEND args --${name} ${arg_${opt}})
    endif()
  endforeach()
  if(arg_STATIC)
    list(APPEND args --static)
  endif()
  foreach(r ${arg_RECORD})
    list(APPEND args --record ${r})
  endforeach()
  list(APPEND args ${arg_OPTIONS})

  # the network's name gives the file names
  if(arg_NETWORK)
    set(net ${arg_NETWORK})
  else()
    set(info_args ${arg_OPTIONS})
    if(arg_NEURONS)
      list(APPEND info_args --neurons ${neurons})
    endif()
    _snnc_network_name(${model} "${info_args}" net)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${model})
  endif()
  string(TOLOWER ${net} stem)

  if(arg_OUT_DIR)
    get_filename_component(out ${arg_OUT_DIR} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})
  else()
    set(out ${CMAKE_CURRENT_BINARY_DIR}/snnc_${arg_TARGET})
  endif()
  list(APPEND args -o ${out})
  set(outputs ${out}/${stem}.c ${out}/${stem}.h)
  if(onnx AND NOT embed)
    list(APPEND outputs ${out}/${stem}.safetensors) # the code loads it at run time
  endif()

  get_filename_component(model_name ${model} NAME)
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND snnc::snnc ${args}
    DEPENDS ${deps}
    COMMENT "snnc: compiling ${model_name} (${arch}) into ${stem}.c and ${stem}.h"
    VERBATIM)

  target_sources(${arg_TARGET} PRIVATE ${out}/${stem}.c ${out}/${stem}.h)
  target_include_directories(${arg_TARGET} PUBLIC $<BUILD_INTERFACE:${out}>)
  if(arch_flags AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    set_property(SOURCE ${out}/${stem}.c APPEND PROPERTY COMPILE_OPTIONS ${arch_flags})
  endif()

  # libm, and OpenMP on request; through the properties, so that the
  # target's own target_link_libraries may use either signature
  set(libs)
  find_library(SNNC_LIBM m)
  mark_as_advanced(SNNC_LIBM)
  if(SNNC_LIBM)
    list(APPEND libs m)
  endif()
  if(arg_OPENMP)
    find_package(OpenMP COMPONENTS C)
    if(OpenMP_C_FOUND)
      list(APPEND libs OpenMP::OpenMP_C) # its compile option comes with it
    else()
      message(STATUS "snnc_generate: no OpenMP for ${CMAKE_C_COMPILER}: ${stem}.c runs on one thread")
    endif()
  endif()
  if(libs)
    get_target_property(type ${arg_TARGET} TYPE)
    if(type STREQUAL "STATIC_LIBRARY" OR type STREQUAL "OBJECT_LIBRARY")
      foreach(l ${libs})
        set_property(TARGET ${arg_TARGET} APPEND PROPERTY INTERFACE_LINK_LIBRARIES $<LINK_ONLY:${l}>)
      endforeach()
    endif()
    if(NOT type STREQUAL "OBJECT_LIBRARY")
      set_property(TARGET ${arg_TARGET} APPEND PROPERTY LINK_LIBRARIES ${libs})
    endif()
  endif()

  if(arg_OUT_VAR)
    set(${arg_OUT_VAR} ${outputs} PARENT_SCOPE)
  endif()
endfunction()

# The name of the network of a model: the one `network NAME {` of a .snn
# file, else the first line of `snnc info` ("network NAME: ...").
function(_snnc_network_name model options out_var)
  if(NOT model MATCHES "\\.onnx$")
    file(READ ${model} text)
    string(REGEX REPLACE "#[^\n]*" "" text "${text}")
    string(REGEX MATCHALL "(^|[^A-Za-z0-9_])network[ \t\r\n]+[A-Za-z_][A-Za-z0-9_]*[ \t\r\n]*{" nets "${text}")
    list(LENGTH nets count)
    if(count EQUAL 1)
      string(REGEX REPLACE ".*network[ \t\r\n]+([A-Za-z_][A-Za-z0-9_]*).*" "\\1" name "${nets}")
      set(${out_var} ${name} PARENT_SCOPE)
      return()
    elseif(count GREATER 1)
      message(FATAL_ERROR "snnc_generate: ${model} defines ${count} networks: choose one with NETWORK <name>")
    endif()
  endif()
  # snnc runs here, at configure time: only an installed one can
  get_target_property(imported snnc::snnc IMPORTED)
  set(snnc_exe)
  if(imported)
    get_target_property(snnc_exe snnc::snnc IMPORTED_LOCATION)
    get_target_property(configs snnc::snnc IMPORTED_CONFIGURATIONS)
    if(NOT snnc_exe AND configs)
      list(GET configs 0 config)
      get_target_property(snnc_exe snnc::snnc IMPORTED_LOCATION_${config})
    endif()
  endif()
  if(NOT snnc_exe)
    message(FATAL_ERROR "snnc_generate: give NETWORK <name> for ${model} (snnc is not built yet, so it cannot tell)")
  endif()
  execute_process(COMMAND ${snnc_exe} info ${model} ${options}
                  OUTPUT_VARIABLE info ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT info MATCHES "^network ([A-Za-z_][A-Za-z0-9_]*):")
    message(FATAL_ERROR "snnc_generate: cannot tell the network of ${model} (give NETWORK <name>):\n${err}")
  endif()
  set(${out_var} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()
