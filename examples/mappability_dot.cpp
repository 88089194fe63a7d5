// Prints guestmem's per-folio mappability state machine (docs/DESIGN.md §Mappability: all,
// guest, none) as a Graphviz DOT graph, generated from the same transition
// table the folio table runs on. Render it with:
//   example_mappability_dot | dot -Tsvg > mappability.svg
#include <guestmem/folio/mappability.hpp>

#include <iostream>

int main() {
    guestmem::write_mappability_dot(std::cout);
    return std::cout ? 0 : 1;
}
