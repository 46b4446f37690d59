# embed.cmake - writes the bytes of files as C arrays, so that the gateway
# serves its API description and its dashboard without reading files at run
# time (no xxd).
#   cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -DHEADER=<header> -P embed.cmake
# defines const unsigned char NAME[] (the bytes, then a NUL not counted) and
# const size_t NAME_len, declared in HEADER.
#   cmake -DDIR=<dir> -DFILES=<a,b,...> -DOUT=<file.c> -DNAME=<symbol> -DHEADER=<header> -P embed.cmake
# defines const gw_embed_file NAME[]: {"a", bytes, length} for each file of
# DIR named (comma-separated: CMake lists do not survive a command line),
# then a row whose name is NULL; HEADER declares it and the type gw_embed_file.

# embed_bytes sets var to the bytes of path as C initialisers and len_var to
# their number.
function(embed_bytes path var len_var)
  file(READ "${path}" hex HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR len "${digits} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # 16 bytes a line keeps the generated file readable (CMake regexes have no {n}).
  string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
  string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
  set(${var} "${bytes}" PARENT_SCOPE)
  set(${len_var} ${len} PARENT_SCOPE)
endfunction()

if(DEFINED DIR)
  string(REPLACE "," ";" names "${FILES}")
  set(arrays "")
  set(rows "")
  set(i 0)
  foreach(name IN LISTS names)
    embed_bytes("${DIR}/${name}" bytes len)
    string(APPEND arrays "static const unsigned char ${NAME}_${i}[] = {\n    ${bytes}0x00,\n};\n")
    string(APPEND rows "    {\"${name}\", ${NAME}_${i}, ${len}},\n")
    math(EXPR i "${i} + 1")
  endforeach()
  file(WRITE "${OUT}"
    "/* Generated from ${DIR} by embed.cmake: do not edit. */\n"
    "#include \"${HEADER}\"\n\n"
    "${arrays}\n"
    "const gw_embed_file ${NAME}[] = {\n${rows}    {NULL, NULL, 0},\n};\n")
else()
  embed_bytes("${IN}" bytes len)
  file(WRITE "${OUT}"
    "/* Generated from ${IN} by embed.cmake: do not edit. */\n"
    "#include \"${HEADER}\"\n\n"
    "const unsigned char ${NAME}[] = {\n    ${bytes}0x00,\n};\n"
    "const size_t ${NAME}_len = ${len};\n")
endif()
