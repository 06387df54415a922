"""Face pipeline: load an image, find 68 landmarks, align a crop, edit the expression, paste back."""
