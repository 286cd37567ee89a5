"""Content-addressed collection store: blocks, canonical manifests, PDHs.

See :mod:`cwl_crunch.store.collection_store` for the on-disk layout and
:mod:`cwl_crunch.store.manifest` for the manifest format.
"""

from cwl_crunch.store.blocks import BLOCK_MTIME_NS
from cwl_crunch.store.collection_store import CollectionStore
from cwl_crunch.store.locators import BLOCK_SIZE, is_pdh, locator_for, pdh_for
from cwl_crunch.store.manifest import DirEntry, FileEntry, Manifest, ManifestEntry
from cwl_crunch.store.references import split_reference
from cwl_crunch.store.tree_walk import confined_root, is_within

__all__ = [
    "BLOCK_MTIME_NS",
    "BLOCK_SIZE",
    "CollectionStore",
    "DirEntry",
    "FileEntry",
    "Manifest",
    "ManifestEntry",
    "confined_root",
    "is_pdh",
    "is_within",
    "locator_for",
    "pdh_for",
    "split_reference",
]
