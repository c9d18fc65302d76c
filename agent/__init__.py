"""The supervisor behind `foundry run`: an unattended loop that mutates the baseline, trains
variants in parallel, ranks them with noise-aware statistics and git-commits the winner.

    loop.py       the generation state machine (screen -> confirm -> promote -> cleanup)
    ledger.py     SQLite (WAL) record of every trial and decision; the supervisor is its only writer
    decide.py     the promotion rule (on foundry/search/stats.py)
    proposer.py   candidates: queue folder, proposer.command, the mutation registry
    lock.py, settings.py, view.py, report.py, cli.py
The git commit of a promotion and the history read back from git are foundry/lineage/.
"""
