/* ferry-aggregator: see core/app/aggregator.c; main only hands over. */
#include "config.h"
#include "app.h"

int main(int argc, char **argv)
{
    return ferry_aggregator_main(argc, argv);
}
