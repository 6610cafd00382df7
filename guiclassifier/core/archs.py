"""The architectures on offer, as the model picker lists them.

No torch here: the window lists the architectures while torch is still loading (core.models has
how each one is built and cut into layer groups).
"""

from __future__ import annotations

N_GROUPS = 3
"""Layer groups every architecture is cut into (early body, later body, head): one lr each."""

DESCRIPTIONS: dict[str, str] = {
    "resnet18": "ResNet-18: small and fast",
    "resnet34": "ResNet-34: the fast.ai lesson-1 model",
    "resnet50": "ResNet-50: more accurate, slower",
    "mobilenet_v2": "MobileNetV2: light, good on a CPU",
    "mobilenet_v3_large": "MobileNetV3-Large: light and accurate",
    "efficientnet_b0": "EfficientNet-B0: accurate for its size",
    "convnext_tiny": "ConvNeXt-Tiny: modern, needs a GPU",
}

PREFERENCE = ("resnet34", "resnet50", "efficientnet_b0", "convnext_tiny", "mobilenet_v3_large", "resnet18",
              "mobilenet_v2")
"""Default choice order: the lesson's resnet34 first, then the others by accuracy."""
