"""Following one person: the tracking phase, the framing controller, PTZ cameras (virtual and real), re-acquisition."""
