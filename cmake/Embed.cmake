# snnc_embed(OUT SYMBOL FILE): turn FILE into a C source OUT that defines
#   const char SYMBOL[]; const unsigned long SYMBOL_len;
# so that the compiler can carry text (the neuron standard library, runtime
# sources it writes beside generated code) without looking for files at run time.
function(snnc_embed out symbol file)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out} -DSYM=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    DEPENDS ${file} ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    COMMENT "Embedding ${file}")
endfunction()
