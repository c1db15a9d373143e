#!/usr/bin/env python3
"""Counts test results of meson builds (the main one, the fuzzing one): GoogleTest
binaries per test case (from their JUnit XML), every other meson test as one; a build
folder without a test log (its build failed) counts as one failure. Prints
"N passed, N failed" last and exits non-zero when anything failed or nothing ran."""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def gtest_xml_path(command):
    for arg in command:
        if arg.startswith("--gtest_output=xml:"):
            return Path(arg.split(":", 1)[1])
    return None


def count(builddir, failures):
    """(passed, failed, skipped) of one build folder; failures get the failed names."""
    log = Path(builddir) / "meson-logs" / "testlog.json"
    passed = failed = skipped = 0
    if not log.exists():
        failures.append(f"{builddir}: no test results (did it build?)")
        return 0, 1, 0
    for line in log.read_text().splitlines():
        test = json.loads(line)
        name, result = test["name"], test["result"]
        if result == "SKIP":
            skipped += 1
            continue
        xml = gtest_xml_path(test.get("command", []))
        cases = []
        if xml is not None and xml.exists():
            for case in ET.parse(xml).getroot().iter("testcase"):
                if case.get("result") == "skipped" or case.find("skipped") is not None:
                    skipped += 1
                    continue
                ok = case.find("failure") is None and case.find("error") is None
                cases.append((f"{name}: {case.get('classname')}.{case.get('name')}", ok))
        if cases:
            for case_name, ok in cases:
                passed += ok
                failed += not ok
                if not ok:
                    failures.append(case_name)
            # A binary that crashed or timed out after its last case still fails.
            if result != "OK" and all(ok for _, ok in cases):
                failed += 1
                failures.append(f"{name}: exited with {result}")
        elif result == "OK":
            passed += 1
        else:
            failed += 1
            failures.append(f"{name}: {result}")
    return passed, failed, skipped


def main(builddirs):
    passed = failed = skipped = 0
    failures = []
    for builddir in builddirs:
        p, f, s = count(builddir, failures)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    for f in failures:
        print(f"FAILED {f}")
    if skipped:
        print(f"{skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build"]))
