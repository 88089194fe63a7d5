// guestmem-snap — print and check guestmem snapshots (docs/SNAPSHOT.md).
//
//   guestmem-snap show FILE    list the snapshot readably (header, runs,
//                              folios, splits, poison, quarantine); -a: all entries
//   guestmem-snap check FILE   validate it completely; print one line
//
// Exit status: 0 valid; 1 usage; 2 FILE cannot be read; 3 not a snapshot
// (magic); 4 a format version this build does not read; 5 truncated;
// 6 trailing bytes; 7 checksum mismatch; 8 any other malformed field (the
// message names its byte offset).
#include <guestmem/snapshot/snapshot.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string_view>
#include <vector>

namespace {

int usage() {
    std::fprintf(stderr, "usage: guestmem-snap show [-a] FILE\n       guestmem-snap check FILE\n");
    return 1;
}

/// The exit status for a rejection (see the file comment).
int status_for(const guestmem::error& e) {
    const std::string_view m = e.message();
    if (e.code() == guestmem::errc::not_supported) return 4;
    if (m.find("not a guestmem snapshot") != std::string_view::npos) return 3;
    if (m.find("truncated") != std::string_view::npos) return 5;
    if (m.find("trailing bytes") != std::string_view::npos) return 6;
    if (m.find("checksum") != std::string_view::npos) return 7;
    return 8;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    const std::string_view cmd = argv[1];
    bool all = false;
    int file_arg = 2;
    if (cmd == "show" && argc == 4 && std::string_view(argv[2]) == "-a") {
        all = true;
        file_arg = 3;
    } else if (argc != 3 || (cmd != "show" && cmd != "check")) {
        return usage();
    }
    const char* path = argv[file_arg];
    std::FILE* f = std::fopen(path, "rb");
    if (f == nullptr) {
        std::fprintf(stderr, "guestmem-snap: %s: %s\n", path, std::strerror(errno));
        return 2;
    }
    std::vector<std::uint8_t> bytes;
    std::uint8_t buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) != 0;) bytes.insert(bytes.end(), buf, buf + n);
    const bool read_error = std::ferror(f) != 0;
    std::fclose(f);
    if (read_error) {
        std::fprintf(stderr, "guestmem-snap: %s: read error\n", path);
        return 2;
    }
    if (cmd == "show") {
        if (auto s = guestmem::snapshot::inspect(bytes, std::cout, all ? 0 : 32); !s) {
            std::fprintf(stderr, "guestmem-snap: %s: %.*s\n", path, int(s.error().message().size()), s.error().message().data());
            return status_for(s.error());
        }
        return 0;
    }
    auto h = guestmem::snapshot::check(bytes);
    if (!h) {
        std::fprintf(stderr, "guestmem-snap: %s: %.*s\n", path, int(h.error().message().size()), h.error().message().data());
        return status_for(h.error());
    }
    const auto& x = h.value();
    std::printf("%s: valid %s snapshot, %zu bytes: %llu pages, max order %u, generation %llu\n", path,
                x.kind == guestmem::snapshot::kind::full ? "full" : "increment", bytes.size(),
                static_cast<unsigned long long>(x.pages), unsigned(x.max_order), static_cast<unsigned long long>(x.generation));
    return 0;
}
