"""Session-wide test isolation: torchao never loads in the pytest process.

torchao registers global Inductor passes when imported, which would change what pt2q's x86
lowering tests measure. pt2q never imports it; transformers does, from its quantizer
integration, whenever torchao is installed (it is: the parity tests run it in subprocesses, see
``torchao_peer.py``). Telling transformers that torchao is absent keeps it out; the last test of
the session (``test_zz_isolation.py``) checks that it stayed out.
"""

from __future__ import annotations

import transformers.utils
import transformers.utils.import_utils


def _torchao_absent(*_args: object, **_kwargs: object) -> bool:
    return False


transformers.utils.is_torchao_available = _torchao_absent
transformers.utils.import_utils.is_torchao_available = _torchao_absent
