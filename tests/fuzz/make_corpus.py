#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py — writes the seed corpus (tests/fuzz/corpus/):
one small binary file per meaningful scenario, encoded in the byte format
that tests/fuzz/harness.hpp decodes. Re-run after changing the format."""
import os

SMALL, BIG = 3 * 512 + 37, (1 << 18) + 515
P1G = 1 << 18
BIG_POINTS = [0, 1, 7, 511, 512, 513, 1024, 1536, BIG // 2, BIG - 513, BIG - 512, BIG - 1, BIG, P1G - 1, P1G, P1G + 1]
LENS = [1, 2, 3, 8, 511, 512, 513, 1024, 4096, P1G]


class Seq:
    def __init__(self, big, shared, helper=0, vm_b=0):
        """helper, vm_b: access policy codes of VM A's helper view and VM B's
        view (0 confidential, 1 confidential without trusted devices, 2 non_confidential)."""
        self.big = big
        self.b = bytearray([(1 if big else 0) | (2 if shared else 0) | (helper << 2) | (vm_b << 4)])

    def point(self, p):
        if not self.big:
            self.b += bytes([0, p & 0xFF, p >> 8])
        else:
            i = BIG_POINTS.index(p)
            self.b.append(i)
        return self

    def rng(self, begin, length=None, whole=False):
        """[begin, begin + length); length 1..64 or from LENS; whole = to the end."""
        if whole:
            self.b.append(143)  # 143 % 16 == 15: to the end
            self.point(begin)
        elif length <= 64:
            self.b.append(0)
            self.point(begin)
            self.b.append(length - 1)
        else:
            i = LENS.index(length)
            mode = next(m for m in range(128, 240) if m % 10 == i and m % 16 != 15 and not m & 64)
            self.b.append(mode)
            self.point(begin)
        return self

    def bad(self, kind):  # 0 whole, 1 inverted, 2 empty, 3 past size, 4 near 2^64
        self.b += bytes([240 + kind, 0, 5, 0, 1])
        return self

    def op(self, code, *rest):
        self.b.append(code)
        self.b += bytes(rest)
        return self

    def allocate(self, b, n=None, whole=False): self.op(0); return self.rng(b, n, whole)
    def punch(self, b, n=None, whole=False): self.op(2); return self.rng(b, n, whole)
    def convert(self, b, n=None, shared=False, defer=False, zero=False, whole=False):
        self.op(3); self.rng(b, n, whole); self.b.append((1 if shared else 0) | (2 if defer else 0) | (4 if zero else 0)); return self
    def pin(self, b, n, who): self.op(6); self.rng(b, n); self.b.append(who); return self
    def unpin(self, b, n): self.op(7); self.rng(b, n); self.b.append(0); return self
    def fault(self, p, guest_only, who): self.op(8, 0); self.point(p); self.b.append((1 if guest_only else 0) | (who << 1)); return self
    def faults(self, p):
        for g in (False, True):
            for w in range(4): self.fault(p, g, w)
        return self
    def poison(self, p): self.op(10, 0); self.point(p); return self
    def bind(self, c, s, b, n=None, base=0, whole=False): self.op(11, c, s); self.rng(b, n, whole); self.b.append(base); return self
    def unbind(self, c, s, how=0): return self.op(12, c, s, how)
    def veto(self, c, p=None):
        if p is None: return self.op(13, c, 0)
        self.op(13, c, 1); self.point(p); return self
    def leak(self, c, p=None):  # consumer c reports p leaked at its next commits
        kb = 0x80 + (c + 1) % 3  # bit 7 set and kb % 3 == c
        if p is None: return self.op(13, kb, 0)
        self.op(13, kb, 1); self.point(p); return self
    def release(self, b, n=None, whole=False): self.op(0xF2); return self.rng(b, n, whole)  # release_quarantine
    def fail_alloc(self, n): return self.op(14, n - 1)
    def fail_node(self, n): return self.op(15, n - 1)

    # Views: 0 = VM A's main view, 1 = VM A's helper, 2 = VM B's view (the opcode's high nibble % 3).
    def on(self, v, code, *rest):
        self.b.append(code + 16 * v)
        self.b += bytes(rest)
        return self
    def vbind(self, v, c, s, b, n=None, base=0, replay=False, whole=False):
        nibble = {0: 9, 1: 10, 2: 8}[v] if replay else v  # a nibble >= 8 replays
        self.on(nibble, 11, c, s); self.rng(b, n, whole); self.b.append(base); return self
    def vunbind(self, v, c, s, how=0): return self.on(v, 12, c, s, how)
    def vconvert(self, v, b, n, shared=False): self.on(v, 3); self.rng(b, n); self.b.append(1 if shared else 0); return self
    def vpin(self, v, b, n, who): self.on(v, 6); self.rng(b, n); self.b.append(who); return self
    def vfaults(self, v, p):
        for g in (False, True):
            for w in range(4): self.on(v, 8, 0); self.point(p); self.b.append((1 if g else 0) | (w << 1))
        return self
    def life(self, kind, policy=0):  # 0 close helper, 1 open helper, 2 close VM B, 3 add VM B
        return self.op(14 + 16 * 12, kind | (policy << 2))


HOST, HYP, DEV, TDEV = range(4)
seeds = {}

s = Seq(False, True).allocate(0, whole=True)
s.bind(0, 0, 0, whole=True).bind(1, 0, 0, whole=True, base=1).bind(2, 0, 512, 512, base=2)
s.veto(2, 520).convert(515, 8).veto(2).convert(515, 8).faults(515)
seeds["veto_then_commit"] = s

s = Seq(False, True).allocate(0, whole=True).pin(700, 1, DEV).convert(690, 20).faults(700).unpin(700, 1).convert(690, 20).faults(700)
seeds["pinned_page_busy_then_unpin"] = s

s = Seq(True, False).allocate(0, P1G).convert(513, 1, shared=True).pin(513, 1, HOST).convert(513, 1, defer=True)
s.faults(513).pin(513, 1, TDEV).unpin(513, 1).faults(513).faults(0)
seeds["deferred_unshare_1g_remerge"] = s

s = Seq(False, True).allocate(0, whole=True)
for b, n in [(0, 1), (10, 10), (511, 2), (0, 512), (1024, 513)]:
    s.convert(b, n).faults(b).convert(b, n, shared=True)
s.convert(0, whole=True).convert(0, whole=True, shared=True)
seeds["round_trips_2m"] = s

s = Seq(False, False).allocate(0, whole=True).convert(100, 64, shared=True).bind(0, 0, 0, whole=True).veto(0, 600)
s.punch(512, 1024).faults(600).punch(1024, 8).faults(1030).allocate(512, 512).faults(512)
seeds["truncate_keeps_shareability"] = s

s = Seq(False, False).allocate(0, 512).convert(500, 20, shared=True).allocate(512, 512).faults(515).faults(600)
seeds["partly_allocated_conversion"] = s

s = Seq(False, True).allocate(0, whole=True).convert(512, 512).faults(1).faults(513).fault(1024 + 512, False, HOST)
seeds["fault_access_matrix"] = s

s = Seq(False, True).allocate(0, whole=True).bind(0, 0, 0, 512).bind(1, 0, 512, 1024, base=3).poison(42).poison(42)
s.faults(42).convert(40, 10).pin(40, 4, HOST).punch(0, 512).poison(0).poison(600).punch(512, 1024)
seeds["memory_failure_and_quarantine"] = s

s = Seq(False, False).convert(500, 30, shared=True).fail_alloc(1).allocate(0, 1024).fail_alloc(2).allocate(0, 1024)
s.fail_node(1).allocate(0, 1024).allocate(0, 1024).fail_alloc(1).convert(1000, 40, shared=True).fail_node(2).convert(700, 3, shared=True)
s.fail_node(1).pin(500, 10, HOST).pin(500, 10, HOST).fail_node(1).unpin(503, 2)
seeds["injected_out_of_memory"] = s

s = Seq(False, True).bind(0, 0, 0, 512).bind(0, 0, 600, 10).bind(0, 1, 500, 20).bind(0, 1, 512, 512).unbind(0, 0)
s.unbind(0, 0, 1).unbind(1, 1, 2).bind(0, 0, 0, 64).allocate(0, 64).convert(0, 64).unbind(0, 1)
seeds["bind_unbind_stale_handles"] = s

s = Seq(False, True).allocate(0, whole=True)
for k in range(5):
    s.op(0).bad(k).op(2).bad(k).op(3).bad(k).b.append(0)
s.op(3).rng(0, 1).b.append(250)  # unknown content policy
s.op(3).rng(0, 1).b.append(254)  # unknown shareability
s.op(6).rng(0, 1).b.append(251)  # unknown accessor
s.op(8, 0).point(0).b.append(253)
s.op(8, 255, 3).op(10, 255).unpin(5, 3)
seeds["bad_input"] = s

s = Seq(False, True).allocate(0, 1024).convert(100, 64, zero=True).convert(100, 64, shared=True, zero=True).punch(10, 20).punch(520, 8)
seeds["content_zero_and_partial_punch"] = s

s = Seq(True, True).allocate(0, whole=True).bind(0, 0, 0, whole=True).bind(1, 0, 512, P1G, base=1)
s.convert(511, 2).convert(1536, 1024).faults(512).faults(0).convert(0, P1G).faults(1).convert(0, P1G, shared=True).pin(7, 1, DEV)
s.convert(0, whole=True, defer=True).faults(7).unpin(7, 1).faults(7)
seeds["big_1g_layouts"] = s

s = Seq(False, True).allocate(0, whole=True).convert(300, 1).bind(0, 0, 0, whole=True).bind(1, 0, 0, 1024, base=1)
s.bind(2, 0, 256, 1024, base=2)
for c in range(3):  # a leak at each consumer position of each commit site
    s.leak(c, 310 + c).convert(296, 24).faults(310 + c).convert(296, 24, shared=True).leak(c)
s.leak(1, 700).punch(512, 512).faults(700).allocate(512, 512).release(700, 1).allocate(512, 512).faults(700)
s.leak(2, 900).unbind(2, 0).faults(900).punch(0, whole=True).allocate(0, whole=True).release(0, whole=True).allocate(0, whole=True)
seeds["leaks_at_every_commit_site"] = s

s = Seq(False, True).allocate(0, whole=True).pin(10, 1, DEV).punch(0, 512).faults(10).allocate(0, 512).faults(10)
s.pin(8, 4, DEV).unpin(10, 1).pin(8, 4, DEV).unpin(8, 4).poison(600).pin(601, 1, TDEV).punch(512, 512).release(512, 512)
s.unpin(601, 1).release(512, 512).allocate(512, 512).faults(600)
s.punch(SMALL - 1, 8).op(2).bad(3).op(2).bad(4).op(2).bad(5)
seeds["truncate_pinned_and_poisoned"] = s

s = Seq(False, False, helper=0, vm_b=2).allocate(0, whole=True).convert(100, 64, shared=True).convert(300, 8, shared=True)
s.vbind(2, 0, 0, 0, whole=True, replay=True)      # VM B's late consumer: told both shared runs
s.veto(1, 302).vbind(1, 1, 0, 0, 512, replay=True)  # vetoes the second run: the first is aborted, no binding
s.veto(1).vbind(1, 1, 0, 0, 512, replay=True).vconvert(0, 96, 16).veto(0, 98).vconvert(1, 96, 16, shared=True)
seeds["views_replay_and_veto"] = s

s = Seq(False, True, helper=1, vm_b=0).allocate(0, whole=True).vbind(1, 0, 0, 0, 512).vbind(2, 1, 0, 0, whole=True)
s.vunbind(2, 0, 0).life(0).vunbind(1, 0, 0).vconvert(1, 0, 8).life(1, policy=2).vfaults(1, 4).life(2)
s.vconvert(2, 0, 8).vpin(2, 0, 1, HOST).life(2).life(3, policy=2).vconvert(2, 0, 8).vfaults(2, 4).vfaults(2, 600)
s.vbind(2, 1, 1, 0, 64, replay=True).vunbind(0, 1, 1).vunbind(2, 1, 1)
seeds["views_lifecycle"] = s

s = Seq(False, False, helper=1, vm_b=2).allocate(0, whole=True).convert(0, 8, shared=True)
for v in range(3):
    s.vfaults(v, 4).vfaults(v, 600)
    for who in (HOST, DEV, TDEV): s.vpin(v, 600, 1, who).vpin(v, 4, 1, who)
s.pin(4, 1, DEV).convert(0, 8, defer=True).vfaults(2, 4).vfaults(0, 4)
seeds["views_policy_matrix"] = s

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for name, seq in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes(seq.b))
print(f"wrote {len(seeds)} seeds to {out}")
