"""RITM HRNet18s ITER-M: HRNetModel(width=18, ocr_width=48, small=True, with_aux_output=True, use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5, with_prev_mask=True), COCO+LVIS, as the official config of the same name."""
from isegm.engine.recipe_utils import ritm_cocolvis_recipe
from isegm.model.is_hrnet_model import HRNetModel


def main(ctx):
    model = HRNetModel(width=18, ocr_width=48, small=True, with_aux_output=True, use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5, with_prev_mask=True)
    ritm_cocolvis_recipe(ctx, model, 'HRNETV2_W18_SMALL', batch_size=28, max_num_next_clicks=3)
