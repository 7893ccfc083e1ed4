/* ferry-producer: see core/app/producer.c; main only hands over. */
#include "config.h"
#include "app.h"

int main(int argc, char **argv)
{
    return ferry_producer_main(argc, argv);
}
