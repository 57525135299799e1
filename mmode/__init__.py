"""M-mode recordings as both wings see them: image files, masks and their runs of pixels,
windows along time, the scanner's conventions, and segmentation scores."""
