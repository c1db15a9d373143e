#!/usr/bin/env python3
"""Writes a C++ source that holds the given JSON schema files as strings, for daemon-common."""
import json
import sys
from pathlib import Path

out, *inputs = sys.argv[1:]
lines = ['// Generated from docs/abi/ by scripts/embed-schemas.py. Do not edit.',
         '#include "json_schema.hpp"', '', 'namespace bai::json {', '',
         'const SchemaSet& abiSchemas() {', '  static const SchemaSet schemas = [] {', '    SchemaSet set;']
for path in inputs:
    text = Path(path).read_text()
    json.loads(text)  # fail the build on a malformed schema
    if ')SCHEMA"' in text:
        sys.exit(f"{path}: contains the raw-string delimiter")
    lines.append(f'    if (auto added = set.add(R"SCHEMA({text})SCHEMA"); !added) throw std::logic_error(added.error().message);')
lines += ['    return set;', '  }();', '  return schemas;', '}', '', '}  // namespace bai::json', '']
Path(out).write_text('\n'.join(lines))
