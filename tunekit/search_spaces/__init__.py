"""Search spaces: optimizer families, LR schedules, and the study space built from them."""
