"""Import every domain's models so the metadata is complete (Alembic, create_all)."""

from app.accounts.models import Membership, User  # noqa: F401
from app.analytics.models import (  # noqa: F401
    AllocationLine,
    AllocationPlan,
    DailyCitySales,
    DailyCityTotal,
    DailySales,
    DailySellIn,
    SalesInbox,
    TransferLine,
    TransferOrder,
)
from app.analytics.target_models import PartnerTarget  # noqa: F401
from app.assessment.models import AssessmentScheme, PartnerAssessment, PeriodClose, RebateEntry  # noqa: F401
from app.catalog.models import PriceTier, Product, Sku, SkuPrice  # noqa: F401
from app.channel.models import Invite, Partner, Store, Territory  # noqa: F401
from app.channel.registration_models import (  # noqa: F401
    Registration,
    RegistrationConflict,
    RegistrationEvent,
    RegistrationIdentity,
    RegistrationPolicy,
)
from app.codes.models import Code, CodeBatch, ScanEvent  # noqa: F401
from app.incentives.models import IncentiveCredit, IncentiveRule  # noqa: F401
from app.inventory.models import Location, StockLevel, StockMovement, Warehouse, WarehouseCity  # noqa: F401
from app.orders.models import (  # noqa: F401
    CommissionEntry,
    CommissionRule,
    ConsumerOrder,
    ConsumerOrderEvent,
    ConsumerOrderLine,
    CreditAccount,
    CreditLedger,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    PaymentNotification,
    Refund,
    Shipment,
    ShipmentLine,
)
from app.ratings.models import StoreRating  # noqa: F401
from app.referrals.models import (  # noqa: F401
    ConsumerVerification,
    ReferralAccount,
    ReferralBinding,
    ReferralDailyTotal,
    ReferralLedger,
    ReferralLink,
    ReferralPayout,
    ReferralPolicy,
    ReferralReward,
)
from app.scans.models import DiversionAlert, DiversionAlertEvent, ScanPolicy, ScanRequest  # noqa: F401
from app.training.models import (  # noqa: F401
    Course,
    CourseCompletion,
    Lesson,
    LessonProgress,
    QuizAttempt,
    TrainingNotice,
)
from app.verification.models import ConsumerSettings, VerifyViewer  # noqa: F401
