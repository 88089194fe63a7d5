# examples/c/readme_blocks.cmake — README.md shows each file of FILES
# verbatim as a ```c block (so what the README prints is what CTest builds).
# cmake -DREADME= -DFILES="a.c;b.c" -P readme_blocks.cmake
file(READ ${README} readme)
foreach(f IN LISTS FILES)
  file(READ ${f} text)
  string(FIND "${readme}" "```c\n${text}```" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "README.md does not show ${f} verbatim in a ```c block: copy the file into it")
  endif()
endforeach()
