"""The sender (``greenq send``): delivers the outbox that handlers fill (``greenq.core.outbox``) to GREEN API.

- :mod:`.api`: the sending calls and showMessagesQueue, on the shared base client.
- :mod:`.leases`: which replica delivers which outbox partition.
- :mod:`.pacing`: one call per delaySendMessagesMilliseconds per instance, across replicas.
- :mod:`.ledger`: the reply records and the commits that settle an entry.
- :mod:`.matching` / :mod:`.lookup`: finding an ambiguous call in GREEN API's queue and journal.
- :mod:`.delivery`: one entry's delivery; :mod:`.lanes` / :mod:`.partition`: order per chat.
- :mod:`.runner`: the process.
"""
