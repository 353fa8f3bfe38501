"""Question generation for VSI-Bench and VSTI-Bench tasks, from scene and frame metadata."""
