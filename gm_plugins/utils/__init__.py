"""What every tool needs: config loading, atomic files, logged commands.

Plain helpers with no registrations; ``tools/*.py`` parse their arguments and call these (or the
package functions built on them).
"""
