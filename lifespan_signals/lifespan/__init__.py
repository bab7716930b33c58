"""The lifespan engine: internal to lifespan_signals (users import from the top-level modules).

- :mod:`.steps`: the one step runner (timing, blame, cancel grace) and the records it keeps, over
  :mod:`.budget` (a phase's time budget) and :mod:`.failures` (what failed, and the report);
- :mod:`.receivers`, :mod:`.resources`, :mod:`.clients` (with :mod:`.backends`), :mod:`.layers`
  (Channels' channel layers): the four kinds of step, each run through the step runner;
- :mod:`.machine`: the ASGI lifespan protocol, and one lifespan's state machine;
- :mod:`.app`: the ASGI face that every lifespan_signals application shares;
- :mod:`.driver`: the other side of the protocol, as a server speaks it, for hosts and tests;
- :mod:`.host`: backstop timeouts and the loop thread, for the hosts of a lifespan.
"""
