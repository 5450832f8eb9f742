"""An import-linter contract that lists what a package MAY import of ours (an allow-list).

import-linter's own ``forbidden`` contract lists what may not be imported, so a new room of the
core would be importable until someone remembered to forbid it. ``allowed`` turns that round:

    [[tool.importlinter.contracts]]
    type = "allowed"
    source_modules = ["containers"]
    allowed_modules = ["clipper_core.rpc"]

Every module of ours that a module inside ``source_modules`` imports directly must be inside a
source or an allowed module; what the allowed modules import is their own contract's business
(pyproject.toml gives ``clipper_core.rpc`` one too). Registered there under ``contract_types``.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _inside(module: str, packages: set[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


class AllowedImportsContract(Contract):
    """``source_modules`` (as packages) import nothing of ours beyond ``allowed_modules``."""

    type_name = "allowed"

    source_modules = fields.SetField(subfield=fields.ModuleField())
    allowed_modules = fields.SetField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = {module.name for module in self.source_modules}
        allowed = {module.name for module in self.allowed_modules}
        violations: list[dict[str, Any]] = []
        importers = sorted(m for m in graph.modules if _inside(m, sources))
        for importer in importers:
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if _inside(imported, sources) or _inside(imported, allowed):
                    continue
                lines = sorted(
                    detail["line_number"]
                    for detail in graph.get_import_details(importer=importer, imported=imported)
                )
                violations.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(sorted(m.name for m in self.allowed_modules)) or "nothing"
        for violation in check.metadata["violations"]:
            lines = ", ".join(f"l.{line}" for line in violation["lines"])
            output.print_error(
                f"{violation['importer']} imports {violation['imported']} ({lines}); "
                f"of ours it may import only {allowed}"
            )
            output.new_line()
