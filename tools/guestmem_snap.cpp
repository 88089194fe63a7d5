// guestmem-snap — print and check guestmem snapshots (docs/SNAPSHOT.md).
//
//   guestmem-snap show [-a] FILE   list the snapshot readably
//   guestmem-snap check FILE       validate it completely; print one line
//
// FILE `-` reads standard input. The help text (kHelpFooter below) is also
// the man page: tools/CMakeLists.txt turns `--help` into guestmem-snap.1.
// The exit status comes from the library's error code (errc), never from
// the message: see kHelpFooter for the table. Arguments are parsed by CLI11.
#include <guestmem/core/version.hpp>
#include <guestmem/snapshot/snapshot.hpp>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

enum exit_status : int {
    valid = 0,
    usage = 1,
    unreadable = 2,
    not_a_snapshot = 3,
    unsupported_version = 4,
    malformed = 5,
};

constexpr const char* kHelpFooter = R"(FILE may be - for standard input.

Exit status:
  0  the snapshot is valid (show: and was listed)
  1  usage error (unknown command or option, missing FILE)
  2  FILE cannot be read
  3  FILE is not a snapshot (it does not start with "GMSN")
  4  a snapshot format version this build does not read
  5  a malformed snapshot: truncated, trailing bytes, checksum mismatch or a
     bad field; the message names the byte offset at fault

Examples:
  guestmem-snap check vm.snap
  guestmem-snap show -a vm.snap | less
  ssh host cat vm.snap | guestmem-snap check -)";

/// The exit status for a snapshot the library rejected, from its code.
int status_for(const guestmem::error& e) {
    switch (e.code()) {
    case guestmem::errc::not_supported: return unsupported_version;
    case guestmem::errc::invalid_argument: return malformed;
    default: return malformed;  // no other code comes from check() or inspect()
    }
}

/// Read all of `path` (`-`: standard input) into `bytes`; false and a message on failure.
bool read_all(const std::string& path, std::vector<std::uint8_t>& bytes) {
    const bool from_stdin = path == "-";
    std::FILE* f = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        std::fprintf(stderr, "guestmem-snap: %s: %s\n", path.c_str(), std::strerror(errno));
        return false;
    }
    std::uint8_t buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) != 0;) bytes.insert(bytes.end(), buf, buf + n);
    const bool read_error = std::ferror(f) != 0;
    if (!from_stdin) std::fclose(f);
    if (read_error) std::fprintf(stderr, "guestmem-snap: %s: read error\n", path.c_str());
    return !read_error;
}

int reject(const std::string& path, const guestmem::error& e) {
    std::fprintf(stderr, "guestmem-snap: %s: %.*s\n", path.c_str(), int(e.message().size()), e.message().data());
    return status_for(e);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Print and check guestmem memory-ownership snapshots (docs/SNAPSHOT.md).", "guestmem-snap"};
    app.footer(kHelpFooter);
    app.set_version_flag("--version", std::string("guestmem-snap ") + guestmem::version_string);
    app.require_subcommand(1);
    std::string path;
    bool all = false;
    CLI::App* show = app.add_subcommand("show", "Check FILE, then list it: header, runs, folios, splits, poison, quarantine");
    show->add_flag("-a,--all", all, "list every entry (default: the first 32 of each section)");
    show->add_option("FILE", path, "the snapshot (- for standard input)")->required();
    CLI::App* check = app.add_subcommand("check", "Validate FILE completely and print one line about it");
    check->add_option("FILE", path, "the snapshot (- for standard input)")->required();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version print to stdout and exit 0; every other parse error is a usage error.
        return app.exit(e) == 0 ? valid : usage;
    }

    std::vector<std::uint8_t> bytes;
    if (!read_all(path, bytes)) return unreadable;
    namespace snap = guestmem::snapshot;
    if (bytes.size() < sizeof snap::magic || std::memcmp(bytes.data(), snap::magic, sizeof snap::magic) != 0) {
        std::fprintf(stderr, "guestmem-snap: %s: not a guestmem snapshot (it does not start with \"GMSN\")\n", path.c_str());
        return not_a_snapshot;
    }
    if (show->parsed()) {
        if (auto s = snap::inspect(bytes, std::cout, all ? 0 : 32); !s) return reject(path, s.error());
        return valid;
    }
    auto h = snap::check(bytes);
    if (!h) return reject(path, h.error());
    const auto& x = h.value();
    std::printf("%s: valid %s snapshot, format %u, %zu bytes: %llu pages, max order %u, generation %llu\n", path.c_str(),
                x.kind == snap::kind::full ? "full" : "increment", unsigned(x.version), bytes.size(),
                static_cast<unsigned long long>(x.pages), unsigned(x.max_order),
                static_cast<unsigned long long>(x.generation));
    return valid;
}
