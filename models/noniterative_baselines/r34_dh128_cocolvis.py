"""RITM ResNet-34 DeepLab-v3+ non-iterative baseline (COCO+LVIS), as the official config."""
from isegm.engine.recipe_utils import ritm_cocolvis_recipe
from isegm.model.is_deeplab_model import DeeplabModel


def main(ctx):
    model = DeeplabModel(backbone='resnet34', deeplab_ch=128, aspp_dropout=0.20, use_leaky_relu=True,
                         use_rgb_conv=False, use_disks=True, norm_radius=5)
    ritm_cocolvis_recipe(ctx, model, 'RESNET34', batch_size=28, max_num_next_clicks=0)
