// Fixture: part b/ defines the type part a/ befriends.
#pragma once
#include "../a/owner.hpp"
namespace fixture::detail {
template <>
struct window<void> {
    static int peek(const owner&) { return 0; }
};
} // namespace fixture::detail
