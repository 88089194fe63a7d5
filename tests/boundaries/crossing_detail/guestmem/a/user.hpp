// Fixture for the part_boundaries_catch_a_detail_include test: part a/
// includes part b/'s detail/, which check_part_boundaries.cmake must refuse.
#pragma once
#include <guestmem/b/detail/inner.hpp>
