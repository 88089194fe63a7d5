# cmake/manpage.cmake — a man page (section 1) made from a tool's own --help
# and --version, so the two never disagree; written gzipped (-9n), as Debian
# installs man pages. The help text goes in verbatim (.nf), escaped for roff.
# cmake -DTOOL=<executable> -DOUT=<file.1> -DSUMMARY=<one line> -P manpage.cmake  ->  <file.1>.gz
cmake_minimum_required(VERSION 3.25)
get_filename_component(name ${OUT} NAME_WE)
foreach(what help version)
  execute_process(COMMAND ${TOOL} --${what} RESULT_VARIABLE rc OUTPUT_VARIABLE ${what} ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TOOL} --${what} exited ${rc}: ${err}")
  endif()
endforeach()
string(STRIP "${version}" version)
string(REGEX REPLACE "^[^ ]+ " "" number "${version}")
# roff: a backslash is \e, a leading . or ' is protected by \&, a - is \-.
string(REPLACE "\\" "\\e" help "${help}")
string(REPLACE "-" "\\-" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
string(STRIP "${help}" help)
string(TOUPPER ${name} title)
file(WRITE ${OUT} ".TH ${title} 1 \"\" \"${name} ${number}\" \"User Commands\"
.SH NAME
${name} \\- ${SUMMARY}
.SH SYNOPSIS
.B ${name}
.RI [ options ]
.I command
.RI [ args ]
.SH DESCRIPTION
This page is the output of
.BR \"${name} \\-\\-help\" .
.PP
.nf
${help}
.fi
")
execute_process(COMMAND gzip -9nf ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${OUT} failed")
endif()
