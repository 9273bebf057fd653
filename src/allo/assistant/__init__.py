"""Customer assistant: understanding (``nlu``), guided tutorials, dialogue policy, handoff."""
