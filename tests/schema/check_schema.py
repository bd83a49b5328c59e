#!/usr/bin/env python3
"""tests/schema/check_schema.py — checks docs/netsys.schema.json.

Usage: check_schema.py SCHEMA EXAMPLES_DIR [FIXTURES_DIR]

Fails (exit 1) unless:
  - SCHEMA is a valid JSON Schema (draft 2020-12);
  - every EXAMPLES_DIR/*.json (at least one) is valid against it;
  - with FIXTURES_DIR: every FIXTURES_DIR/valid/*.json is valid and every
    FIXTURES_DIR/invalid/*.json is rejected, so the schema is shown to be
    strict, not just permissive.

Documents are read as strict JSON: a repeated key is an error here too, as it
is for the netsys loader (a schema alone cannot see it). Needs the Debian
package python3-jsonschema.
"""
import glob
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("check_schema.py: the Python module 'jsonschema' is missing "
                     "(Debian: apt-get install python3-jsonschema)\n")
    sys.exit(1)


class DuplicateKey(ValueError):
    pass


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey('duplicate key "%s"' % key)
        seen[key] = value
    return seen


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=no_duplicates)


def problems(validator, path):
    """The reasons `path` is not a valid document (empty if it is)."""
    try:
        doc = load(path)
    except (ValueError, OSError) as e:
        return ["%s" % e]
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "$" + "".join("[%d]" % p if isinstance(p, int) else "." + p
                              for p in err.absolute_path)
        out.append("%s: %s" % (where, err.message))
    return out


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    schema_path, examples_dir = argv[1], argv[2]
    fixtures_dir = argv[3] if len(argv) == 4 else None

    schema = load(schema_path)
    cls = jsonschema.validators.validator_for(schema)
    if cls is not jsonschema.Draft202012Validator:
        print("FAIL %s: expected a draft 2020-12 schema" % schema_path)
        return 1
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        print("FAIL %s: not a valid schema: %s" % (schema_path, e.message))
        return 1
    validator = cls(schema)

    failed = 0
    examples = sorted(glob.glob(os.path.join(examples_dir, "*.json")))
    if not examples:
        print("FAIL: no *.json in %s" % examples_dir)
        failed += 1
    for path in examples:
        why = problems(validator, path)
        if why:
            failed += 1
            print("FAIL %s:" % path)
            for w in why:
                print("    " + w)
        else:
            print("ok   %s" % path)

    if fixtures_dir is not None:
        for path in sorted(glob.glob(os.path.join(fixtures_dir, "valid", "*.json"))):
            why = problems(validator, path)
            if why:
                failed += 1
                print("FAIL %s (should be valid):" % path)
                for w in why:
                    print("    " + w)
            else:
                print("ok   %s (valid)" % path)
        invalid = sorted(glob.glob(os.path.join(fixtures_dir, "invalid", "*.json")))
        if not invalid:
            print("FAIL: no invalid fixtures in %s" % fixtures_dir)
            failed += 1
        for path in invalid:
            why = problems(validator, path)
            if not why:
                failed += 1
                print("FAIL %s (should be rejected, but the schema accepts it)" % path)
            else:
                print("ok   %s (rejected: %s)" % (path, why[0]))

    print("%d failure(s)" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
