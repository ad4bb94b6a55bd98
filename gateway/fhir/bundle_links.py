"""Which strings of a transaction's resources are links to its entries, told by their type.

R4 (http.html#trules) has a transaction point "all matching links in the bundle" at what its
entries became: a Reference's ``reference``, elements of type uri, url, canonical, oid and
uuid, and the narrative's ``href`` and ``src``.  Other strings are the client's words: a
``code.text``, a ``valueString`` or a ``Coding.code`` that happens to read ``urn:uuid:…`` keeps
it.  Each element's type is the R4 base model's (:class:`~conformance.structure.BaseModel`),
so an extension's ``valueUri`` is a link and its ``valueString`` is not.

A relative reference in an entry whose fullUrl is a RESTful URL on another base resolves
against that base (bundle.html, "Resolving references in Bundles"): ``Basic/tmpA`` in the
entry ``http://example.org/fhir/Basic/tmpB`` names the entry ``http://example.org/fhir/Basic/tmpA``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conformance.structure import BaseModel, NodeModel
from mappings.engine import relinked_narrative

#: the primitive types whose values are links (besides Reference.reference, a string)
LINK_TYPES = frozenset({"uri", "url", "canonical", "oid", "uuid"})
#: a RESTful fullUrl: its base, then Type/id
_RESTFUL = re.compile(r"(?P<base>[a-z][a-z0-9+.-]*://.+)/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")


def restful_identity(full_url: str | None) -> tuple[str, str] | None:
    """The (type, id) a fullUrl of the RESTful form (``…/Basic/a``) names, or None for any
    other (``urn:uuid:…``): the identity that references to it are rewritten from."""
    restful = _RESTFUL.fullmatch(full_url or "")
    return (restful["type"], restful["id"]) if restful is not None else None


def links_of(full_url: str | None, renamed: Mapping[str, str]) -> Mapping[str, str]:
    """The links to rewrite in the entry at ``full_url``: ``renamed`` (each entry's fullUrl,
    and its relative form on this server's base → what it now names) and, when the entry's
    fullUrl has another base, the relative forms of the fullUrls on that base."""
    restful = _RESTFUL.fullmatch(full_url or "")
    if restful is None:
        return renamed
    prefix = f"{restful['base']}/"
    relative = {link[len(prefix) :]: target for link, target in renamed.items() if link.startswith(prefix)}
    return {**renamed, **relative} if relative else renamed


def relink(resource: dict[str, Any], links: Mapping[str, str], model: BaseModel) -> None:
    """Point each link of ``resource`` found in ``links`` at its new target, in place, walking
    its elements by their types (contained resources and extensions included).  Iterative, so
    no nesting depth can exhaust the stack; elements the model does not know are left alone
    (validation refuses them).  No links, nothing to point elsewhere: the walk is skipped (a
    Bundle whose entries have no fullUrl, or a patch with no entry to name)."""
    if not links:
        return
    stack: list[tuple[Any, NodeModel | None]] = [(resource, model.nodes.get(resource.get("resourceType", "")))]
    while stack:
        value, node = stack.pop()
        if node is None or not isinstance(value, dict):
            continue
        for key, child in value.items():
            slot = node.slots.get(key)
            if slot is None:
                continue
            if slot.type in LINK_TYPES or (node.name == "Reference" and key == "reference"):
                value[key] = _relinked(child, links)
            elif slot.type == "xhtml" and isinstance(child, str):
                value[key] = relinked_narrative(child, links)
            else:
                for item in child if isinstance(child, list) else [child]:
                    if slot.is_resource and isinstance(item, dict):
                        stack.append((item, model.nodes.get(item.get("resourceType", ""))))
                    elif slot.child is not None:
                        stack.append((item, slot.child))


def _relinked(value: Any, links: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return links.get(value, value)
    if isinstance(value, list):
        return [links.get(item, item) if isinstance(item, str) else item for item in value]
    return value
