// Fixture for the part_boundaries_catch_a_crossing test: part a/ befriends
// a type of part b/, which check_part_boundaries.cmake must refuse.
#pragma once
namespace fixture {
namespace detail { template <class> struct window; }
class owner {
    template <class> friend struct detail::window;  // crosses into b/
    int secret_ = 0;
};
} // namespace fixture
