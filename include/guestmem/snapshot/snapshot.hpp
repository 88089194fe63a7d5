/// @file
/// The snapshot part in one include: save() and saved_size() (save.hpp),
/// check(), restore() and error_offset() (restore.hpp), for_each_change(),
/// save_increment() and apply_increment() (changes.hpp), inspect()
/// (inspect.hpp), and the format's vocabulary (format.hpp). The format is
/// documented field by field in docs/SNAPSHOT.md. Not in the umbrella
/// header guestmem.hpp: include it where snapshots are taken.
#pragma once

#include <guestmem/snapshot/changes.hpp>
#include <guestmem/snapshot/format.hpp>
#include <guestmem/snapshot/inspect.hpp>
#include <guestmem/snapshot/restore.hpp>
#include <guestmem/snapshot/save.hpp>
