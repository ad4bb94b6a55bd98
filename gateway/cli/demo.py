"""``yiyang demo [--database URL] [--out DIR] [--reveal]``: the batch job on demo data.

It validates the package's examples, ingests every shipped sample export into one archive and
shows the elder all sources share.  The archive is found as ``yiyang ingest`` finds its own
(:func:`gateway.cli.ingest.targets`): ``--database``, else ``YIYANG_DATABASE_URL`` unless
``--out`` is given, else a store of its own in ``OUT/demo`` (``./out/demo``), made anew.
"""

from __future__ import annotations

import argparse
import shutil
from typing import IO, Any

from gateway.cli.common import EXIT_INVALID, EXIT_OK, add_language
from gateway.cli.ingest import add_targets, targets
from gateway.cli.validate import check_examples, registry_with
from gateway.masking import mask_name
from gateway.match_keys import match_keys
from gateway.messages import text
from gateway.storage import displayable_url
from gateway.storage.store import Store
from mappings.specs import SOURCES
from profiles.canonical import ID_CARD_SYSTEM

#: the elder whose records every sample source carries, by 身份证号
DEMO_ELDER = {"system": ID_CARD_SYSTEM, "value": "410105194912310020"}


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="cli.help.demo")
    add_language(demo)
    add_targets(demo, "cli.help.demo.out")
    demo.add_argument("--reveal", action="store_true", help="cli.help.reveal-people")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace, out: IO[str]) -> int:
    """The batch job on demo data: validate the package's examples, then ingest every shipped
    sample export of every source into one archive and show the elder who arrives from all
    of them as one Patient."""
    from conformance.validator import Validator
    from gateway.config import Config
    from gateway.demo import sample_files
    from gateway.export import export_folder
    from gateway.ingest.commands import archive, ingest, summary
    from gateway.masking import masked_unless

    out = masked_unless(args.reveal, out)
    folder, services = targets(args, within="demo")
    try:
        registry = services.registry if services else registry_with(args)
        config = services.config if services else Config.load()
        line, all_right = check_examples(Validator(registry), args.lang)
        out.write(line + "\n")
        if services is None and folder is not None and folder.exists():
            shutil.rmtree(folder)  # the folder's own archive is made anew
        with archive(folder, registry, services.store if services else None, config) as store:
            for source in SOURCES:
                files = sample_files(source)
                if files:
                    out.write(f"\n[{source}] " + ", ".join(f.name for f in files) + "\n")
                    counts = ingest(source, files, None, registry, store=store, config=config, lang=args.lang)
                    out.write(summary(counts, args.lang) + "\n")
            if folder is not None:  # once, when every source is in: each source's ingest exported it all
                export_folder(store, folder)
            _show_shared_elder(store, out, args.lang, args.reveal)
    finally:
        if services:
            services.close()
    if folder is not None:
        out.write("\n" + text("cli.demo.output-folder", args.lang, {"path": folder}) + "\n")
    if services is not None:
        out.write(text("cli.serve.store", args.lang, {"url": displayable_url(services.config.database_url)}) + "\n")
    return EXIT_OK if all_right else EXIT_INVALID


def _show_shared_elder(store: Store, out: IO[str], lang: str, reveal: bool) -> None:
    """The elder every source knows, as one Patient of the archive (``out`` masks their
    身份证号; the name is masked here unless ``reveal``)."""
    with store.reading() as tx:
        person_id = tx.identity.person_of(match_keys({"identifier": [DEMO_ELDER]})[0])
        stored = tx.resources.read("Patient", person_id) if person_id else None
    if stored is None or stored.resource is None:
        return
    person = stored.resource
    name = person["name"][0].get("text", "")
    elder = {"id": person["id"], "name": name if reveal else mask_name(name)}
    out.write("\n" + text("cli.demo.shared-elder", lang, elder) + "\n")
    for identifier in person["identifier"]:
        out.write(f"  {identifier['system']}  {identifier['value']}\n")
