/* ferry-validator: see core/app/validator.c; main only hands over. */
#include "config.h"
#include "app.h"

int main(int argc, char **argv)
{
    return ferry_validator_main(argc, argv);
}
