"""The pclntab reader against the Go toolchain's own tools, for every installed Go
version and every fixture flavour (with DWARF, stripped, PIE):

  - the function table (`glimpse inspect BIN --funcs . --json`) must list exactly
    the functions `go tool nm` lists, at the same addresses;
  - `glimpse inspect BIN --addr2line` must print exactly what `go tool addr2line`
    prints for random pcs inside functions (and "?" outside them).

Stripped builds have no symbols for nm/addr2line to read, so they are compared with
the tools' view of the non-stripped build of the same version: stripping does not
move code, so the addresses are the same.
"""
import json
import os
import random
import re
import subprocess

from harness import fixtures, glimpse, go

PCS_PER_BINARY = 1000

# nm lists these symbols in text that are not functions of the pclntab.
NM_MARKERS = {"runtime.text", "runtime.etext"}


def reference(version, flavour, path):
    """The binary whose symbols describe path: itself, or its non-stripped twin."""
    return path[: -len(".stripped")] if flavour == ".stripped" else path


def addr2line_tool(version, flavour):
    """go1.19's addr2line cannot read PIE binaries (its debug/gosym takes the text
    start from the pcHeader, which holds 0 until relocated, and prints "?" for
    every pc); later toolchains read go1.19 binaries correctly, so use the newest."""
    if version == "1.19" and flavour == ".pie":
        newest = [v for v in ("1.26", "1.25", "1.24", "1.23") if os.path.exists(go(v))]
        if newest:
            return go(newest[0])
    return go(version)


def run(cmd, input=None):
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr[:500]}")
    return p.stdout


def normalize(name):
    """One spelling for names the symbol table and the pclntab spell differently:
    nm adds .abi0 to assembly functions, spells generic type arguments out where the
    pclntab has [...] (go1.19), and writes '.' for the pclntab's '·'."""
    name = name.replace("\u00b7", ".")
    if name.endswith(".abi0"):
        name = name[: -len(".abi0")]
    out, depth = [], 0
    for ch in name:
        if ch == "[":
            if depth == 0:
                out.append("[...]")
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def glimpse_functions(path):
    p = glimpse("inspect", path, "--funcs", ".", "--json", timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"glimpse inspect {path} --funcs . exited {p.returncode}: {p.stderr[:500]}")
    funcs = json.loads(p.stdout)["functions"]
    assert funcs, path
    return funcs


def nm_text_symbols(version, path):
    """{address: [names]} of the text symbols (T/t) go tool nm lists."""
    syms = {}
    for line in run([go(version), "tool", "nm", path]).splitlines():
        m = re.match(r"\s*([0-9a-f]+) ([Tt]) (.+)$", line)
        if m:
            syms.setdefault(int(m.group(1), 16), []).append(m.group(3))
    return syms


def check_table_shape(path, funcs):
    for a, b in zip(funcs, funcs[1:]):
        assert a["entry"] <= b["entry"], (path, a["name"], b["name"])
        assert a["end"] == b["entry"], (path, a["name"], hex(a["end"]), b["name"], hex(b["entry"]))
    for f in funcs:
        assert f["size"] == f["end"] - f["entry"] and f["end"] >= f["entry"], (path, f)


def compare_with_nm(path, funcs, syms):
    """Same functions at the same addresses. nm may also list section markers and,
    in cgo builds, C functions (names without a package path) that the pclntab lacks."""
    ours = {}
    for f in funcs:
        ours.setdefault(f["entry"], []).append(f["name"])
    problems = []
    for addr, names in sorted(ours.items()):
        theirs = {normalize(n) for n in syms.get(addr, []) if n not in NM_MARKERS}
        for n in names:
            if normalize(n) not in theirs:
                problems.append(f"0x{addr:x}: glimpse says {n!r}, nm says {sorted(syms.get(addr, []))}")
    for addr, names in sorted(syms.items()):
        if addr in ours:
            continue
        for n in names:
            if n in NM_MARKERS or "." not in n:
                continue
            problems.append(f"0x{addr:x}: nm lists {n!r}, glimpse has no function there")
    assert not problems, f"{path}: {len(problems)} differences from go tool nm:\n" + "\n".join(problems[:20])


def test_function_table_equals_go_tool_nm_for_every_fixture():
    seen = 0
    for v, flavour, path in fixtures():
        funcs = glimpse_functions(path)
        check_table_shape(path, funcs)
        syms = nm_text_symbols(v, reference(v, flavour, path))
        compare_with_nm(path, funcs, syms)
        # The last function ends at or before nm's end-of-text marker.
        etext = [a for a, names in syms.items() if "runtime.etext" in names]
        assert etext and funcs[-1]["end"] <= etext[0] < funcs[-1]["end"] + 64, (path, funcs[-1], etext)
        seen += 1
    assert seen == 21, f"expected 7 Go versions x 3 flavours, found {seen} fixtures"


def random_pcs(funcs, seed):
    """PCS_PER_BINARY pcs inside functions, plus one before and one after all of them."""
    rnd = random.Random(seed)
    # "go:" symbols (go:textfipsstart, ...) are linker markers with no line table, not code:
    # go tool addr2line decodes garbage for them, glimpse says unknown as the runtime does.
    sized = [f for f in funcs if f["end"] > f["entry"] and not f["name"].startswith("go:")]
    pcs = [rnd.randrange(f["entry"], f["end"]) for f in (rnd.choice(sized) for _ in range(PCS_PER_BINARY))]
    # the entry of main.Handle (a known main.go line), and two pcs outside every function
    pcs += [f["entry"] for f in funcs if f["name"] == "main.Handle"]
    pcs += [funcs[0]["entry"] - 1, funcs[-1]["end"]]
    return "".join(f"0x{pc:x}\n" for pc in pcs)


def test_addr2line_equals_go_tool_addr2line_for_every_fixture():
    seen = 0
    for v, flavour, path in fixtures():
        funcs = glimpse_functions(path)
        pcs = random_pcs(funcs, f"{v}{flavour}")
        want = run([addr2line_tool(v, flavour), "tool", "addr2line", reference(v, flavour, path)], input=pcs)
        p = glimpse("inspect", path, "--addr2line", input=pcs)
        assert p.returncode == 0, (path, p.stderr)
        got = p.stdout
        if got != want:
            g, w, q = got.splitlines(), want.splitlines(), pcs.split()
            bad = [f"{pc}: glimpse {g[2 * i:2 * i + 2]}, addr2line {w[2 * i:2 * i + 2]}"
                   for i, pc in enumerate(q) if g[2 * i:2 * i + 2] != w[2 * i:2 * i + 2]]
            raise AssertionError(f"{path}: {len(bad)} of {len(q)} pcs differ from go tool addr2line:\n"
                                 + "\n".join(bad[:20]))
        assert got.count("\n") == 2 * len(pcs.split()), path
        # the Go source of the fixture is found at least once
        assert "tests/fixtures/target/main.go:" in got, path
        seen += 1
    assert seen == 21, f"expected 7 Go versions x 3 flavours, found {seen} fixtures"
