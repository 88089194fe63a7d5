/// @file
/// The library's version, as macros (for `#if`) and constants. The numbers
/// are the CMake project's VERSION: configuring fails when they differ, so
/// this header and the installed package (guestmemConfigVersion.cmake,
/// guestmem.pc, the .debs) always agree. While the major version is 0 a
/// minor release may break the API: compare major and minor (CHANGELOG.md
/// says what changed). No cost: compile-time constants only.
#pragma once

/// The major version: 0 while the API may still change between minor releases.
#define GUESTMEM_VERSION_MAJOR 0
/// The minor version.
#define GUESTMEM_VERSION_MINOR 1
/// The patch version: fixes only, no API change.
#define GUESTMEM_VERSION_PATCH 0
/// major * 10000 + minor * 100 + patch (0.1.0 is 100): `#if GUESTMEM_VERSION >= 200`.
#define GUESTMEM_VERSION (GUESTMEM_VERSION_MAJOR * 10000 + GUESTMEM_VERSION_MINOR * 100 + GUESTMEM_VERSION_PATCH)
/// "0.1.0".
#define GUESTMEM_VERSION_STRING "0.1.0"

namespace guestmem {

/// GUESTMEM_VERSION_STRING as a value, for a program's `--version`.
inline constexpr const char* version_string = GUESTMEM_VERSION_STRING;

} // namespace guestmem
