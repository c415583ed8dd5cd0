# Script mode helper of Embed.cmake: writes the bytes of IN as a C array.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
get_filename_component(name ${IN} NAME)
file(WRITE ${OUT} "/* Generated from ${name} by cmake/EmbedFile.cmake. */\n"
     "const char ${SYM}[] = {\n${body}0x00};\n"
     "const unsigned long ${SYM}_len = ${len};\n")
