"""What every tool needs: config loading, atomic files, logged commands.

Plain helpers with no registrations; ``tools/*.py`` parse their arguments and call these (or the
package functions built on them): :mod:`.config` (``load_config``: file, scope and required keys
checked), :mod:`.io` (the one atomic writer of JSON, CSV and text), :mod:`.processes` (logged
commands and resumable stages), :mod:`.allocator` (malloc keeps what a training step frees).
"""
