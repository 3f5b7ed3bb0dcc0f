"""analyze: translation maps, findings, report, AI-review prompts and regression fixtures."""
