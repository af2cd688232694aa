"""Every weight file the pipeline uses: what it is for, where it lives, where to get it.

- `registry`: the table of every file (purpose, path in the weights folder, source, licence) and
  the weights folder (`--weights DIR`, else `$RDANCE_HOME`, else `~/.cache/realisdance`);
- `lookup`: whether a file is present and whole, in the weights folder or else the Hugging Face
  cache, and how to get it when it is not;
- `download`: fetching files at the registry's pinned revision, into the weights folder when the
  user named one, else into the Hugging Face cache; licence-gated files and files off the hub come
  with exact instructions instead;
- `structure`: is a file whole, by its format's own structure (no published checksum needed).
"""

from realisdance_cli.weights.download import ManualDownload, download
from realisdance_cli.weights.lookup import (
    Status,
    download_command,
    how_to_get,
    instructions,
    not_found,
    not_needed,
    refetch,
    require,
    require_all,
    status,
)
from realisdance_cli.weights.registry import (
    GROUPS,
    OPTIONAL_GROUPS,
    REGISTRY,
    HubFile,
    HubFolder,
    Manual,
    WeightFile,
    get,
    select,
    weights_root,
)

__all__ = [
    "GROUPS",
    "OPTIONAL_GROUPS",
    "REGISTRY",
    "HubFile",
    "HubFolder",
    "Manual",
    "ManualDownload",
    "Status",
    "WeightFile",
    "download",
    "download_command",
    "get",
    "how_to_get",
    "instructions",
    "not_found",
    "not_needed",
    "refetch",
    "require",
    "require_all",
    "select",
    "status",
    "weights_root",
]
