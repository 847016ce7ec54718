/* test_feedback.c - the compute loop's controller: moves towards measured/modelled (all the way
 * when far, half or a quarter of the way when close, not within 2%; at most x1.5 a step), stays
 * within 4x of the model, ignores windows without work. */
#include "../../src/limiter/compute_feedback.h"
#include "../test_util.h"

int main(void)
{
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.30), 1024);
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.24), 922);   /* -20%: half way */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.285), 1011); /* -5%: a quarter of the way */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.303), 1024); /* +1%: noise, stays */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.45), 1536);  /* +50%: all the way */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.10), 683);   /* clamped to /1.5 */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, 0.90), 1536);  /* clamped to x1.5 */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.01, 0.50), 1024);  /* too little work */
    CHECK_EQ_INT(vgpu_feedback_next_scale(1024, 0.30, -1), 1024);    /* NVML unknown */
    CHECK_EQ_INT(vgpu_feedback_next_scale(0, 0.30, 0.30), 1024);     /* unset means 1.0 */
    uint32_t s = 1024; /* events overstating by 1.5x, a 30% limit binding: converges to 1/1.5 */
    for (int i = 0; i < 30; i++) {
        double modelled = 0.30 * 1024.0 / s; /* the gate holds modelled x scale at the limit */
        s = vgpu_feedback_next_scale(s, modelled, modelled / 1.5);
    }
    CHECK(s > 660 && s < 705);
    s = 4096;
    CHECK(vgpu_feedback_next_scale(s, 0.05, 1.0) <= 4096); /* never more than 4x */
    s = 256;
    CHECK(vgpu_feedback_next_scale(s, 1.0, 0.01) >= 256);
    TEST_MAIN_END();
}
