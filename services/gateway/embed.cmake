# embed.cmake - writes the bytes of a file as a C array, so that the gateway
# serves its API description without reading files at run time (no xxd).
#   cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -DHEADER=<header> -P embed.cmake
# defines const unsigned char NAME[] (the bytes, then a NUL not counted) and
# const size_t NAME_len, declared in HEADER.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 16 bytes a line keeps the generated file readable (CMake regexes have no {n}).
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}"
  "/* Generated from ${IN} by embed.cmake: do not edit. */\n"
  "#include \"${HEADER}\"\n\n"
  "const unsigned char ${NAME}[] = {\n    ${bytes}0x00,\n};\n"
  "const size_t ${NAME}_len = ${len};\n")
