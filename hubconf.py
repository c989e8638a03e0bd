"""torch.hub entry points: ``torch.hub.load(REPO, "resnet3d_rs50", source="local", pretrained=FOLDER)``.

Every registered model name (``rs3d.list_models()``) is an entry; ``pretrained`` is a folder or URL
written by ``rs3d-export`` / ``rs3d.save_pretrained`` (None: random initialisation); other keyword
arguments go to ``rs3d.create_model`` (``num_classes``, ``width_multiplier``, ...).
"""

import rs3d

dependencies = ["torch", "safetensors"]


def _entry(name):
    def entry(pretrained=None, **kwargs):
        return rs3d.create_model(name, pretrained=pretrained, **kwargs)

    entry.__name__ = name
    entry.__doc__ = f"rs3d.create_model({name!r}, pretrained=FOLDER_OR_URL, **kwargs)"
    return entry


for _name in rs3d.list_models():
    globals()[_name] = _entry(_name)
