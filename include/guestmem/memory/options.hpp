/// @file
/// guestmem/memory/options.hpp — guest_memory's policies named where they
/// are used. `guest_memory<A, C, L, N>` takes its policies by position;
/// `guest_memory_with<A, options...>` takes any of them by name, in any
/// order, the rest defaulted:
///
///     guest_memory_with<memfd_allocator, options::lock<null_lock>>
///     guest_memory_with<guest_memfd_allocator, options::consumer<my_stage2>,
///                       options::lock<std::shared_mutex>>
///
/// Both spell the same type. An option given twice, or anything that is not
/// an option, is a compile-time error.
#pragma once

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <type_traits>

namespace guestmem {

/// The named policies of guest_memory_with.
namespace options {
/// The consumer type bound to the object: the virtual `consumer` base by
/// default, or one closed consumer type (no virtual dispatch). `C` must
/// satisfy invalidation_consumer.
template <class C>
struct consumer {
    using type = C;  ///< the consumer type chosen
};
/// The object's lock: `sharded_shared_mutex<>` by default (faults on many
/// threads scale); `null_lock` for one thread; `std::shared_mutex` for the
/// standard one. `L` must
/// satisfy lock_policy.
template <class L>
struct lock {
    using type = L;  ///< the lock type chosen
};
/// Where map, folio and pin records come from (`std::allocator<std::byte>`
/// by default): a standard allocator, rebound per record type, that
/// reports exhaustion by returning nullptr (out_of_memory).
template <class A>
struct node_allocator {
    using type = A;  ///< the node allocator type chosen
};
} // namespace options

namespace detail {
template <template <class> class Option, class T>
struct is_option : std::false_type {};
template <template <class> class Option, class X>
struct is_option<Option, Option<X>> : std::true_type {};

/// The type named by the one Option<X> among Options, or Default.
template <template <class> class Option, class Default, class... Options>
struct pick_option {
    static constexpr std::size_t given = (std::size_t{0} + ... + std::size_t{is_option<Option, Options>::value});
    static_assert(given <= 1, "a guest_memory option is given more than once");
    template <class First, class... Rest>
    static auto find() {
        if constexpr (is_option<Option, First>::value)
            return std::type_identity<typename First::type>{};
        else if constexpr (sizeof...(Rest) == 0)
            return std::type_identity<Default>{};
        else
            return find<Rest...>();
    }
    static auto get() {
        if constexpr (sizeof...(Options) == 0)
            return std::type_identity<Default>{};
        else
            return find<Options...>();
    }
    using type = typename decltype(get())::type;
};

template <class T>
inline constexpr bool is_any_option = is_option<options::consumer, T>::value || is_option<options::lock, T>::value ||
                                      is_option<options::node_allocator, T>::value;
} // namespace detail
} // namespace guestmem
