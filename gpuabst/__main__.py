"""``python -m gpuabst``: the same as the ``gpuabst`` command."""

from gpuabst.cli.main import main

raise SystemExit(main())
